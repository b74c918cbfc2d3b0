-- One database per service in the compose demo network (run once, on an empty data volume).
CREATE DATABASE registry;
CREATE DATABASE utrecht;
CREATE DATABASE amsterdam;
CREATE DATABASE supplier_a;
CREATE DATABASE supplier_b;
